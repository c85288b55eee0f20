"""Training throughput of ftscale's finetuning loop against the Hugging Face Trainer (+ PEFT).

Both sides train the same model (a copy of one initialisation), on the same encoded examples
(same truncation, target-only labels), with the same batch size, learning rate, schedule, grad
clipping and thread count, for the same number of steps; both are measured in this process, in
this run. Tokens/s counts real (non-pad) tokens of the batches trained on.

    python benchmarks/bench_finetune.py [--device cpu|cuda] [--json] [--steps N] [--models A B]

Models: the family's smallest and largest members (trained checkpoints when installed, else
random weights in the same shapes: throughput does not depend on the weights), or --models. On CUDA the default model is the SmolLM2-135M shape at batch 32 x 256
tokens, bf16 autocast on both sides. MFU counts 6 N FLOPs per token for full tuning and
4 N + 6 trainable for PET, against the GPU's dense bf16 peak; it is null on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
import warnings

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L4": 121e12}

SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    tie_word_embeddings=True,
)


def _random_llama(tok, **shape):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **shape,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _models(args, tok):
    """[(name, model, tokenizer)] to benchmark: the family's smallest and largest members
    (trained checkpoints when installed, else randomly initialised members of the same shapes,
    which train at the same speed), or the --models given, or the SmolLM2-135M shape on CUDA."""
    if args.models:
        from ftscale.models import load_model

        return [(n, *load_model(n)[:2]) for n in args.models]
    if args.device == "cuda":
        return [("smollm2-135m-shape", _random_llama(tok, **SMOLLM2_135M), tok)]
    from ftscale.models import family_shapes, list_models, llama_config

    shapes = family_shapes()
    names = [min(shapes), max(shapes, key=lambda n: shapes[n].d_model)]
    installed = {m.name for m in list_models() if m.family}
    out = []
    for n in names:
        if n in installed:
            from ftscale.models import load_model

            out.append((n, *load_model(n)[:2]))
            continue
        import torch
        from transformers import LlamaForCausalLM

        torch.manual_seed(0)
        cfg = llama_config(
            shapes[n],
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        out.append((f"{n}-shape-random", LlamaForCausalLM(cfg).eval(), tok))
    return out


def _trainer_tokens_per_s(model, tok, task, examples, method, args, lr, pet_size):
    """The HF Trainer (+ PEFT for LoRA, IA3 and prompt tuning) on the same encoded examples."""
    import torch
    from transformers import Trainer, TrainingArguments

    from ftscale.finetune.engine import encode

    enc = encode(tok, task, examples, args.max_length)
    rows = [
        {"input_ids": ids.tolist(), "labels": [-100] * n + ids[n:].tolist()}
        for ids, n in zip(enc.ids, enc.n_prompt, strict=True)
    ]
    counted = {"tokens": 0}

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        counted["tokens"] += int(mask.sum())
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    model = copy.deepcopy(model)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=pet_size, lora_alpha=2 * pet_size, lora_dropout=0.0,
                       target_modules="all-linear", task_type="CAUSAL_LM"),
        )  # fmt: skip
    elif method == "ia3":
        from peft import IA3Config, get_peft_model

        model = get_peft_model(model, IA3Config(task_type="CAUSAL_LM"))
    elif method == "prompt":
        from peft import PromptTuningConfig, get_peft_model

        model = get_peft_model(
            model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=pet_size)
        )
    cuda = args.device == "cuda"
    targs = TrainingArguments(
        output_dir=args.tmp,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, args.steps // 10),
        remove_unused_columns=False,
        max_grad_norm=1.0,
        weight_decay=0.0,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collate)
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its metrics: keep --json clean
        out = trainer.train()
    wall = time.perf_counter() - t
    runtime = float(out.metrics.get("train_runtime", wall))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counted["tokens"] / runtime, trainable


def _ours(model, tok, task, method, args, lr, pet_size):
    from ftscale.finetune import run_finetune

    pet = {"lora": {"rank": pet_size}, "prompt": {"prompt_length": pet_size}}.get(method, {})
    rec = run_finetune(
        dict(
            model="bench",
            task=task.name,
            method=method,
            data_size=args.data_size,
            steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lr=lr,
            eval_every=0,  # evaluate once at the end (outside the timed training segments)
            patience=0,
            dev_examples=4,
            test_examples=4,
            decode_examples=0,
            zero_shot=False,
            device=args.device,
            compile=args.compile,
            **pet,
        ),
        model=model,
        tokenizer=tok,
        task=task,
    )
    return rec["tokens_per_second"], rec["trainable_params"]


def _peft_prompt_loop(model, tok, task, examples, args, pet_size, steps):
    """Tokens/s of a plain loop (no Trainer) over PEFT's prompt tuning, for the lean-vs-PEFT
    choice: same batches (bucketed), same optimiser, PEFT's own forward with masked labels."""
    import numpy as np
    import torch
    from peft import PromptTuningConfig, get_peft_model

    from ftscale.finetune.engine import encode, train_batches

    model = get_peft_model(
        copy.deepcopy(model), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=pet_size)
    )
    enc = encode(tok, task, examples, args.max_length)
    batches = train_batches(enc, args.batch_size, 0, tok.pad_token_id, np.random.default_rng(0))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, foreach=True)
    model.train()
    tokens, t = 0, time.perf_counter()
    for _ in range(steps):
        b = next(batches)
        labels = torch.full_like(b.input_ids, -100)
        labels.view(-1)[b.tgt_idx + 1] = b.tgt_ids  # hidden j-1 predicts token j
        loss = model(input_ids=b.input_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += b.n_tokens
    return tokens / (time.perf_counter() - t)


def _top_ops(fn, *args, n: int = 6) -> dict[str, float]:
    """Share of self CPU time of the ``n`` costliest operators while ``fn(*args)`` runs (a
    whole run: training and its small end-of-run evaluation)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return {e.key: round(e.self_cpu_time_total / total, 3) for e in events[:n]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--steps", type=int, default=None, help="steps per side (cpu 30, cuda 60)")
    p.add_argument("--batch-size", type=int, default=None, help="cpu 16, cuda 32")
    p.add_argument("--max-length", type=int, default=None, help="cpu 128, cuda 256")
    p.add_argument("--data-size", type=int, default=512)
    p.add_argument(
        "--task", default="translate-en-de", help="task for real models (random ones use toy text)"
    )
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--methods", nargs="*", default=["fmt", "lora", "prompt", "ia3"])
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--prompt-length", type=int, default=100)
    p.add_argument("--compile", action="store_true", help="torch.compile our side (CUDA)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--prompt-impl",
        action="store_true",
        help="also time PEFT's prompt tuning in a plain loop (lean-vs-PEFT check)",
    )
    p.add_argument(
        "--repeats", type=int, default=2, help="alternate ours/trainer this often; keep the best"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="say where the time goes: each side's top operators by CPU time (torch.profiler)",
    )
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    args.steps = args.steps or (60 if cuda else 30)
    args.batch_size = args.batch_size or (32 if cuda else 16)
    args.max_length = args.max_length or (256 if cuda else 128)
    warnings.filterwarnings("ignore")
    import tempfile

    import torch

    from ftscale.testing.toy import ToyTask, toy_tokenizer

    torch.set_num_threads(args.threads)
    # translation-like lengths on the CPU (~20-60 tokens); ~256-token rows on the GPU
    words = (60, 90) if cuda else (4, 16)
    toy = ToyTask(name="bench", n_train=args.data_size, n_dev=8, n_test=8, words=words)
    tok = toy_tokenizer(toy)
    toy_examples = toy.subset(args.data_size, 0)
    # throughput does not depend on these
    lrs = {"fmt": 1e-4, "lora": 1e-3, "prompt": 1e-2, "ia3": 1e-2}
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in device_name), None) if cuda else None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        for name, model, mtok in _models(args, tok):
            task, examples = toy, toy_examples
            if mtok is not tok and args.task:
                # a real model with its own tokenizer: real task text, real lengths
                from ftscale.data import get_task

                task = get_task(args.task)  # ours takes task.subset(data_size, seed 0) too
                examples = task.subset(args.data_size, 0)
            n_params = sum(p.numel() for p in model.parameters())
            for method in args.methods:
                pet = {"lora": args.rank, "prompt": args.prompt_length}.get(method)
                # alternate ours / Trainer, each on a fresh copy of the same weights, and keep
                # each side's best: on a shared machine the best run is the least disturbed one
                ours = theirs = 0.0
                for _ in range(args.repeats):
                    o, trainable = _ours(model, mtok, task, method, args, lrs[method], pet)
                    t, _ = _trainer_tokens_per_s(
                        model, mtok, task, examples, method, args, lrs[method], pet
                    )
                    ours, theirs = max(ours, o), max(theirs, t)
                extra = {}
                if args.profile:
                    same = (model, mtok, task)
                    extra["ours_top_ops"] = _top_ops(_ours, *same, method, args, lrs[method], pet)
                    extra["trainer_top_ops"] = _top_ops(
                        _trainer_tokens_per_s, *same, examples, method, args, lrs[method], pet
                    )
                if method == "prompt" and args.prompt_impl:
                    extra["peft_plain_loop_tokens_per_s"] = round(
                        _peft_prompt_loop(model, mtok, task, examples, args, pet, args.steps), 1
                    )
                per_token = 6 * n_params if method == "fmt" else 4 * n_params + 6 * trainable
                results.append(
                    {
                        "model": name,
                        "model_params": n_params,
                        "method": method,
                        "ours_tokens_per_s": round(ours, 1),
                        "trainer_tokens_per_s": round(theirs, 1),
                        "ratio": round(ours / theirs, 3),
                        "mfu": round(ours * per_token / peak, 4) if peak else None,
                        "trainer_mfu": round(theirs * per_token / peak, 4) if peak else None,
                        **extra,
                    }
                )
                if not args.json:
                    r = results[-1]
                    for side in ("ours", "trainer"):
                        if f"{side}_top_ops" in r:
                            ops = ", ".join(f"{k} {v:.0%}" for k, v in r[f"{side}_top_ops"].items())
                            print(f"{'':>22} {side} time by operator: {ops}", file=sys.stderr)
                    print(
                        f"{name:>22} {method:>6}  ours {r['ours_tokens_per_s']:>9.0f} tok/s  "
                        f"trainer {r['trainer_tokens_per_s']:>9.0f} tok/s  x{r['ratio']:.2f}"
                        + (f"  mfu {r['mfu']:.3f}" if r["mfu"] is not None else ""),
                        flush=True,
                    )
    out = {
        "device": device_name,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "steps": args.steps,
        "results": results,
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
