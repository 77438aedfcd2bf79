"""Models from elsewhere: the import of released DiariZen models."""
