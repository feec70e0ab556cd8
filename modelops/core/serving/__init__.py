"""Serving: a registered adapter on its base model, predicting labels, confidences and embeddings."""
