"""Kim's CNN for sentence classification (lecture 003; Kim 2014) on a small sentence set.

Words become learned vectors (an embedding), 1-D convolutions of several widths slide over the
sentence, max pooling over time keeps each filter's strongest response, and a dense layer with
dropout classifies. The data are 158 short positive/negative film-review sentences in
examples/data/sentences.tsv; a fixed fifth of them is held out for testing. With so few
sentences the filters are one and two words wide (Kim's are 3, 4 and 5 words wide).

    python examples/text_cnn.py [--epochs 30]
"""

import argparse
import re
from pathlib import Path

import numpy as np

from striate import functional as F
from striate import models, nn, optim
from striate.tensor import no_grad

DATA = Path(__file__).with_name("data") / "sentences.tsv"
PAD, UNKNOWN = 0, 1


def read_sentences(path=DATA) -> tuple[list[list[str]], np.ndarray]:
    """Lower-case word lists and labels (1 positive, 0 negative) from a label<TAB>text file."""
    words, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        label, text = line.split("\t")
        words.append(re.findall(r"[a-zé']+", text.lower()))
        labels.append(int(label))
    return words, np.array(labels, dtype=np.int64)


def encode(sentences, vocab: dict[str, int], length: int) -> np.ndarray:
    """(N, length) word ids, padded with PAD; words outside the vocabulary become UNKNOWN."""
    ids = np.full((len(sentences), length), PAD, dtype=np.int64)
    for n, words in enumerate(sentences):
        row = [vocab.get(w, UNKNOWN) for w in words][:length]
        ids[n, :len(row)] = row
    return ids


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    parser.add_argument("--quick", action="store_true", help="3 epochs")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs

    sentences, labels = read_sentences()
    order = np.random.default_rng(0).permutation(len(labels))  # the split: fixed, seed 0
    test, train = order[:len(order) // 5], order[len(order) // 5:]
    vocab = {}
    for n in train:
        for w in sentences[n]:
            vocab.setdefault(w, len(vocab) + 2)  # 0 and 1 are PAD and UNKNOWN
    length = max(len(s) for s in sentences)
    ids = encode(sentences, vocab, length)

    nn.init.set_seed(args.seed)
    model = models.create("textcnn", vocab_size=len(vocab) + 2, embed_dim=24, filters=16,
                          widths=(1, 2), input_length=length)
    adam = optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(args.seed)
    print(f"{len(train)} training and {len(test)} test sentences, {len(vocab)} words, "
          f"length {length}")
    for epoch in range(epochs):
        model.train()
        for batch in np.array_split(rng.permutation(train), 4):
            adam.zero_grad()
            loss = F.cross_entropy(model(ids[batch]), labels[batch])
            loss.backward()
            adam.step()
        model.eval()
        with no_grad():
            predicted = model(ids[test]).data.argmax(axis=1)
        if epoch == epochs - 1 or (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}, test accuracy "
                  f"{np.mean(predicted == labels[test]):.0%}")
    for text in ("a funny and moving film", "a dull and tedious film"):
        with no_grad():
            p = F.softmax(model(encode([text.split()], vocab, length))).data[0, 1]
        print(f"  '{text}': positive with probability {p:.2f}")


if __name__ == "__main__":
    main()
