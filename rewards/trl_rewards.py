"""Registry names for the rewards that `trl.rewards` already ships; imported from TRL only when a recipe asks.

Both read the `completion_ids` column that `GRPOTrainer` passes, so their lengths are in tokens.
"""

from .registry import register_reward

# DAPO's soft overlong punishment: 0 up to max_completion_len - soft_punish_cache tokens, then down to -1.
register_reward("soft_overlong_punishment", target="trl.rewards:get_soft_overlong_punishment")
# Repeated token n-grams: (1 - unique/total) * max_penalty.
register_reward("repetition_penalty", target="trl.rewards:get_repetition_penalty_reward")
