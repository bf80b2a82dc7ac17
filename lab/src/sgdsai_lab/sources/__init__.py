"""Data sources: embedded (stdlib bytes, digits) and fetched (images, corpora, pretrained weights)."""
