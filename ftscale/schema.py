"""The one results-table vocabulary used everywhere: SQLite store, CSV, Parquet, JSONL, JSON.

One row per finetuning run (long format). Units are part of the name's contract.
"""

from __future__ import annotations

#: Identity and scaling factors of a run, then its two losses. Every table has these columns
#: (a factor that does not apply is empty/null).
CORE_COLUMNS: tuple[str, ...] = (
    "task",  # task name, e.g. "translate-en-de"
    "method",  # finetuning method: "fmt", "lora", "prompt", ...
    "model",  # model name (family member or checkpoint) or path
    "model_size",  # parameters of the base model (PET parameters excluded)
    "pretrain_tokens",  # tokens seen in pretraining by this checkpoint
    "pet_size",  # LoRA rank or prompt length (null for fmt)
    "pet_params",  # parameters added by the PET method (0 for fmt)
    "data_size",  # finetuning examples
    "seed",  # seed of the data subset and the run
    "loss",  # test token-level NLL of the target, nats/token, at the best-dev checkpoint
    "dev_loss",  # dev token-level NLL of the target, nats/token, at that checkpoint
)

#: Cost columns: where present, recommendations can trade loss against cost.
COST_COLUMNS: tuple[str, ...] = (
    "train_seconds",  # wall-clock seconds of training (evaluation included)
    "flops",  # estimated training FLOPs
    "peak_mem_bytes",  # peak resident memory of the run, bytes
    "trainable_params",  # parameters updated by the method
)

#: Further per-run columns the finetuning engine and the study store record.
EXTRA_COLUMNS: tuple[str, ...] = (
    "model_size_nonembed",  # non-embedding parameters of the base model
    "tokens_per_second",  # training tokens per second
    "zero_shot_loss",  # test NLL of the base model before finetuning, nats/token
    # forgetting (ftscale.finetune.forget): NLL over all tokens of a fixed sample of general text
    # (held-out pretraining-distribution text, or the run's forget_text), nats/token
    "forget_loss_before",  # of the base model, before finetuning
    "forget_loss",  # of the finetuned model at the kept checkpoint (adapter/prompt applied)
    "forgetting",  # forget_loss - forget_loss_before (positive: general text got worse)
    "lr",  # peak learning rate of the kept checkpoint (the one chosen on dev, if several)
    "bleu",  # generation metrics, percent (0-100), on greedy decodes of the test sample
    "chrf",
    "rougeL",
    "exact_match",  # share of decodes equal to the reference (whitespace and case folded), %
    "truncated",  # examples (train + dev + test) cut to max_length
    "steps",  # optimiser steps taken
    "best_step",  # step of the kept (best-dev) checkpoint
    "diverged_step",  # step at which loss became NaN/inf, else null
    "run_key",  # stable hash of the run's full configuration, data hash and code version
    "status",  # pending | running | done | failed | diverged
)

#: Numeric columns that are sizes: they must be positive where used as a law's factor.
SIZE_COLUMNS: tuple[str, ...] = (
    "model_size",
    "model_size_nonembed",
    "pretrain_tokens",
    "pet_size",
    "pet_params",
    "data_size",
)

ALL_COLUMNS: tuple[str, ...] = CORE_COLUMNS + COST_COLUMNS + EXTRA_COLUMNS
