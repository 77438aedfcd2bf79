"""Models in and out: the import of released DiariZen models (diarizen.py), packing a trained
model with its model card (pack.py), and using one from Python (pretrained.py: ``Diarizer``;
espnet_api.py: ESPnet's ``DiarizeSpeech`` interface)."""
