"""Fine-tune before prune: distil the fine-tuned WavLM into a gated copy under a sparsity budget.

Light modules (no espnet2 import): :mod:`.lagrangian`, :mod:`.schedule`, :mod:`.distill`,
:mod:`.optim`, :mod:`.plot`.  :mod:`.model` holds the ESPnet model the trainer runs.
"""
