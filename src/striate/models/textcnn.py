"""The sentence-classification CNN of Kim (2014).

Word vectors of a sentence form an (L, embed_dim) "image" with one spatial axis. Filters of
several widths slide over the words (1-D convolution, ReLU), max-over-time pooling keeps each
filter's strongest response wherever it occurs, and a dense layer classifies the concatenated
features after dropout:

    ids (N, L) -> embedding (N, L, embed_dim)
               -> for each width w: conv1d w x embed_dim, `filters` maps, ReLU (N, L-w+1, filters)
                                    -> max over time (N, filters)
               -> concatenate (N, len(widths) * filters) -> dropout -> dense (N, num_classes)

With `static_channel=True` ("CNN-multichannel") a second embedding table is kept fixed during
training; each filter is applied to both channels and the results are added. Since convolution
is linear, that equals one convolution of the sum of the two channels' vectors, which is how it
is computed here.
"""

from __future__ import annotations

import numpy as np

from striate import Tensor, concatenate
from striate import functional as F
from striate.models.registry import register
from striate.nn import Conv1D, Dense, Dropout, Embedding, Module

__all__ = ["TextCNN"]


class TextCNN(Module):
    """Kim's CNN for sentence classification.

    vocab_size: number of word ids V; embed_dim: word-vector size (300 for word2vec);
    widths: filter widths (region sizes); filters: maps per width; dropout: rate before the
    dense layer; static_channel: add a second embedding table, a frozen
    `Embedding(trainable=False)` layer `static_embedding` initialised as a copy of the trainable
    one and never trained (state_dict key `static_embedding.weight`); input_length: the default
    sentence length L (the model accepts any L >= max(widths)).
    Input integer ids (N, L); output (N, num_classes) logits.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embed_dim: int = 300,
                 widths=(3, 4, 5), filters: int = 100, dropout: float = 0.5,
                 static_channel: bool = False, input_length: int = 50):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        if not self.widths:
            raise ValueError("textcnn: widths must name at least one filter width, got ()")
        if input_length < max(self.widths):
            raise ValueError(
                f"textcnn: input_length must be >= the widest filter {max(self.widths)}, "
                f"got {input_length}"
            )
        self.embedding = Embedding(vocab_size, embed_dim)
        self.static_channel = bool(static_channel)
        if self.static_channel:
            self.static_embedding = Embedding(vocab_size, embed_dim, trainable=False)
            self.static_embedding.weight[...] = self.embedding.table
        for w in self.widths:
            setattr(self, f"conv{w}", Conv1D(filters, w, activation="relu",
                                             kernel_initializer="he_uniform",
                                             input_channels=embed_dim))
        self.dropout = Dropout(dropout)
        self.fc = Dense(num_classes, input_dim=len(self.widths) * filters)
        self.default_input_shape = (input_length,)

    def forward(self, ids):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.ndim != 2:
            raise ValueError(f"TextCNN: expected integer ids (N, L), got shape {ids.shape}")
        if ids.shape[1] < max(self.widths):
            raise ValueError(
                f"TextCNN: sentences of {ids.shape[1]} words are shorter than the widest "
                f"filter ({max(self.widths)}); pad them to at least that length"
            )
        # Calling a Module wraps arrays as float Tensors: take whole numbers back as ids.
        if not np.issubdtype(ids.dtype, np.integer):
            if not np.array_equal(ids, np.round(ids)):
                raise TypeError(f"TextCNN: ids must be integers, got dtype {ids.dtype}")
            ids = ids.astype(np.intp)
        x = self.embedding(ids)  # (N, L, embed_dim)
        if self.static_channel:
            x = x + self.static_embedding(ids)
        features = [F.global_max_pool(getattr(self, f"conv{w}")(x)) for w in self.widths]
        return self.fc(self.dropout(concatenate(features, axis=-1)))  # (N, widths*filters)


@register("textcnn")
def textcnn(num_classes: int = 2, vocab_size: int = 20000, embed_dim: int = 300,
            widths=(3, 4, 5), filters: int = 100, dropout: float = 0.5,
            static_channel: bool = False, input_length: int = 50) -> TextCNN:
    """Kim (2014) CNN-rand / CNN-non-static, or CNN-multichannel with static_channel=True.

    >>> textcnn(vocab_size=100, embed_dim=16)(np.zeros((4, 20), dtype=int)).shape
    (4, 2)
    """
    return TextCNN(vocab_size, num_classes, embed_dim, widths, filters, dropout,
                   static_channel, input_length)
