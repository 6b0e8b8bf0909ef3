"""The attachment store: files of every channel and every upload, content-addressed under the data dir."""
