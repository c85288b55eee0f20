"""Our pretraining step vs a plain Hugging Face Trainer step, same model and batch.

    .venv/bin/python benchmarks/bench_pretrain.py [--steps 20] [--members ftlm-1,ftlm-6]

For each family size: seconds per optimiser step of (a) the explicit loop in
``ftscale.models.loop.train_model`` (forward, cross-entropy, backward, clip, AdamW) and (b)
``transformers.Trainer.training_step`` + ``optimizer.step`` on the same model, the same batch
(default 8 x 256 tokens) and one intra-op thread, then tokens/s and the ratio Trainer / ours (> 1: ours is
faster). Also the time of our step with 2 intra-op threads over 1 (why the loop uses 1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def _our_step(model, opt, x, y):
    import torch
    import torch.nn.functional as F

    logits = model(input_ids=x).logits
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def _time_pair(fa, fb, steps: int) -> tuple[float, float]:
    """Median seconds per call of ``fa`` and ``fb``, alternated call by call so that load from
    other processes on a shared machine hits both alike."""
    for _ in range(2):  # warm-up: allocator, first-call overheads
        fa()
        fb()
    ta, tb = [], []
    for _ in range(steps):
        t = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def bench(name: str, steps: int, batch: int, seq: int, fused: bool = False) -> dict:
    import torch
    from transformers import LlamaForCausalLM, Trainer, TrainingArguments

    from ftscale.models.family import family_shapes, llama_config

    shape = family_shapes()[name]
    torch.manual_seed(0)
    x_full = torch.randint(0, shape.vocab_size, (batch, seq + 1))
    x, y = x_full[:, :-1], x_full[:, 1:]

    torch.set_num_threads(1)
    model = LlamaForCausalLM(llama_config(shape))
    opt = torch.optim.AdamW(
        model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=fused or None
    )
    ours_step = lambda: _our_step(model, opt, x, y)  # noqa: E731

    def ours_2threads():
        torch.set_num_threads(2)
        _our_step(model, opt, x, y)
        torch.set_num_threads(1)

    model_hf = LlamaForCausalLM(llama_config(shape))
    with tempfile.TemporaryDirectory() as td:
        args = TrainingArguments(
            output_dir=td,
            per_device_train_batch_size=batch,
            learning_rate=1e-3,
            weight_decay=0.1,
            adam_beta2=0.95,
            max_grad_norm=1.0,
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            logging_strategy="no",
            save_strategy="no",
        )
        trainer = Trainer(model=model_hf, args=args)
        trainer.create_optimizer_and_scheduler(num_training_steps=1000)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train() in v5
        inputs = {"input_ids": x_full[:, :-1].contiguous(), "labels": x_full[:, :-1].contiguous()}

        def hf_step():
            trainer.training_step(model_hf, inputs)
            # Trainer's inner loop clips, steps and zeroes the gradients after training_step
            torch.nn.utils.clip_grad_norm_(model_hf.parameters(), 1.0)
            trainer.optimizer.step()
            trainer.lr_scheduler.step()
            model_hf.zero_grad(set_to_none=True)

        ours, hf = _time_pair(ours_step, hf_step, steps)
        ours1, ours2 = _time_pair(ours_step, ours_2threads, max(3, steps // 3))
    tokens = batch * seq
    return {
        "name": name,
        "nonembed": shape.params_nonembed(),
        "ours_s": ours,
        "hf_s": hf,
        "ours_2threads_s": ours2,
        "threads_ratio": ours2 / ours1,
        "ours_tok_s": tokens / ours,
        "hf_tok_s": tokens / hf,
        "ratio": hf / ours,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--members", default="ftlm-1,ftlm-2,ftlm-3,ftlm-4,ftlm-5,ftlm-6")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument(
        "--fused",
        action="store_true",
        help="fused AdamW in our step too (the Trainer's default optimizer on CPU)",
    )
    args = ap.parse_args()
    print(
        f"{'member':<8} {'nonembed':>9} {'ours s/step':>11} {'HF s/step':>10} {'ours tok/s':>10} "
        f"{'HF tok/s':>9} {'HF/ours':>8} {'2thr/1thr':>9}"
    )
    for name in args.members.split(","):
        r = bench(name, args.steps, args.batch, args.seq, args.fused)
        print(
            f"{r['name']:<8} {r['nonembed']:>9,} {r['ours_s']:>11.3f} {r['hf_s']:>10.3f} "
            f"{r['ours_tok_s']:>10.0f} {r['hf_tok_s']:>9.0f} {r['ratio']:>8.2f} {r['threads_ratio']:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
