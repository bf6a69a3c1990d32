"""Data: fonts, transcripts, rendering, the synthetic corpus, packing, shards, the reader."""
