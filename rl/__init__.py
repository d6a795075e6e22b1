"""The RL stage: Ray rollout actors, generation engines, GRPO and DPO, weight sync, checkpoint/resume."""
