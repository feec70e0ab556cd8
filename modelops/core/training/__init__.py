"""Training: the training policy, LoRA fine-tuning of the base model, one tracked training run, reproduction."""
