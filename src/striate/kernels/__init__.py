"""The fast algorithms behind `striate.functional`, one per file, and one dispatch table per op
family. The definitions they compute live in `striate.reference`."""
