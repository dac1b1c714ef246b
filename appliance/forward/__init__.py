"""Store-and-forward: routing rules, one persistent queue per destination, the C-STORE SCU that
sends batches over one association, retries with backoff, hold/release, and retention."""
