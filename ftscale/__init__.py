"""ftscale: finetuning scaling studies.

The pipeline, one subpackage per stage:

    data -> models -> finetune -> study (plan, run, store) -> laws -> report

``ftscale.laws`` needs only numpy and scipy; the training stack (torch, transformers, peft) is
imported inside the stages that need it.
"""

__version__ = "0.1.0"
