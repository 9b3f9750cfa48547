"""Features of a text: TF-IDF word and char n-grams (fast vectorizers), hashed n-grams, sentence embeddings."""
