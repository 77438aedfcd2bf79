"""Evaluation of diarization output: scoring (DER/JER), the oracle ablation, and a recipe's
RESULTS.md / scores.json."""
