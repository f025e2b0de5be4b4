"""`r1video compose`: build a TinyLLaVA-Video checkpoint from a causal LM and a SigLIP tower (arguments parsed before
torch loads, so `--help` and usage errors are instant; the work is `r1video.model.compose`)."""

from r1video.usage import ArgumentParser


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="r1video compose",
        description="Build a TinyLLaVA-Video checkpoint from a causal LM and a SigLIP vision tower, with a new "
        "resampler connector, saved in the released layout with tokenizer, processor and chat template.",
    )
    parser.add_argument("--llm", required=True, help="causal LM (Hub id or folder): Qwen2/Qwen2.5, Phi-2, Gemma")
    parser.add_argument("--vision", required=True, help="SigLIP model (Hub id or folder)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--connector", default="group", choices=["group", "naive"], help="default: %(default)s")
    parser.add_argument("--num-queries", type=int, default=512, help="visual tokens per video (default: %(default)s)")
    parser.add_argument("--group", type=int, default=16, help="group resampler chunks (default: %(default)s)")
    parser.add_argument("--resampler-layers", type=int, default=3, help="default: %(default)s")
    parser.add_argument("--model-max-length", type=int, default=3072, help="default: %(default)s")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--seed", type=int, default=0, help="connector initialisation seed")
    args = parser.parse_args(argv)

    from r1video.policies import policy_for

    return policy_for("tinyllava").compose_command(args)
