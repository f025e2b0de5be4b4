"""`cpu_threads`: the torch thread count of a CPU training run."""

import logging

logger = logging.getLogger("r1video.threads")


def apply_cpu_threads(args) -> int | None:
    """Sets torch's intra-op thread count to `args.cpu_threads` when `args` trains on CPU, and prints it
    (unless the log level is above warnings).

    Args:
        args: a [`VideoGRPOConfig`] or [`VideoSFTConfig`] (any `TrainingArguments` with `cpu_threads`).

    Returns:
        `int | None`: the thread count in use on CPU (torch's default when `cpu_threads` is 0), `None` on GPU.
    """
    import torch

    if args.device.type != "cpu":
        return None
    if args.cpu_threads > 0:
        torch.set_num_threads(args.cpu_threads)
    threads = torch.get_num_threads()
    if args.process_index == 0 and args.get_process_log_level() <= logging.WARNING:  # not with --quiet
        source = "cpu_threads" if args.cpu_threads > 0 else "torch's default, cpu_threads: 0"
        print(f"training on CPU with {threads} torch thread(s) per process ({source})", flush=True)  # noqa: T201
    return threads
