"""The run configuration: YAML -> pydantic models, every field documented.

``sparring config show configs/jokes.yaml --explain`` prints each field with its description;
``--set a.b=c`` overrides with type checking (see ``sparring/config_io.py``).  Unknown keys are
errors.  Exercised by ``pytest tests/sparring/test_config.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STAGES = ("data", "sft", "rl", "eval", "export", "report")


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, assignment is validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    name: str = Field("smollm2-135m", description="Base model: an alias (smollm2-135m, tiny-random-llama, tiny-random-gpt2, tiny-random-qwen2), a Hugging Face Hub id, a local HF directory, a LoRA adapter directory or a .gguf file.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) when `name` is a Hub id.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype for training and HF generation; float32 on CPU.")
    max_seq_len: int = Field(512, ge=16, description="Longest tokenized sequence (prompt + completion) used in training.")


class DataConfig(Section):
    source: str = Field("builtin", description="'builtin' (the env's shipped/generated corpus) or a path to a JSONL file (chat, alpaca or prompt/completion rows).")
    count: int = Field(0, ge=0, description="Rows to generate or keep; 0 means all the source has.")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of rows held out for validation (seeded split).")
    on_bad_line: Literal["skip", "fail"] = Field("skip", description="Malformed JSONL rows: 'skip' reports each with file:line and continues; 'fail' stops at the first.")
    options: dict[str, Any] = Field(default_factory=dict, description="Generator-specific options (e.g. chess: positions, nodes; qa: kinds).")


class LoraConfig(Section):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scaling = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["auto"] = Field("auto", description="Module names to adapt; 'auto' detects them per architecture (Llama q/k/v/o, GPT-2 c_attn/c_proj).")
    include_mlp: bool = Field(False, description="With target_modules=auto, also adapt the MLP projections.")


class SFTConfig(Section):
    epochs: float = Field(1.0, gt=0, description="Passes over the training split (ignored when max_steps > 0).")
    max_steps: int = Field(0, ge=0, description="Stop after this many optimizer steps; 0 means use epochs.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate of the cosine schedule.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Fraction of steps spent warming up linearly.")
    batch_size: int = Field(8, ge=1, description="Sequences per device per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    packing: bool = Field(False, description="Pack several short examples into one sequence.")
    assistant_only_loss: bool = Field(True, description="Compute the loss on the assistant tokens only.")
    share_prompt_prefix: bool = Field(True, description="Run the tokens every row of a batch starts with (chat template, system prompt, fixed few-shot turns) once and the rest of each row on its KV cache: the same loss and gradients as a per-row forward for a fraction of the compute (rotary-position models without packing; others fall back).")
    eval_every: int = Field(0, ge=0, description="Evaluate validation loss every N steps (0: at the end of each epoch).")
    save_every: int = Field(0, ge=0, description="Checkpoint every N steps, a multiple of eval_every (0: at every evaluation; without a validation split, no checkpoints); the best by validation loss and the latest are kept.")
    early_stopping_patience: int = Field(0, ge=0, description="Stop after this many evaluations without validation-loss improvement (0: off).")
    bf16: bool | None = Field(None, description="Train in bfloat16: on CPU the frozen base is held in bf16 under the float32 LoRA adapter (its gradients and the optimizer stay float32; the adapter and merged outputs are rebuilt on the model.dtype base), on GPU bf16 autocast. Much faster on CPUs with AVX-512 BF16 or AMX and on GPUs with bf16; slow on CPUs without them. None: on where the hardware has it.")
    qlora: bool = Field(False, description="Load the base in 4-bit (bitsandbytes) and train LoRA on it. CUDA only.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapter settings.")


class EnvConfig(Section):
    name: str = Field("jokes", description="Registered env name: jokes, chess, quotes, qa, timeline.")
    options: dict[str, Any] = Field(default_factory=dict, description="Env-specific options, validated by the env's own Options model (`sparring config show --explain` lists them).")


class RolloutConfig(Section):
    engine: Literal["hf", "llamacpp", "vllm"] = Field("llamacpp", description="Generation engine in the rollout actors: hf (transformers), llamacpp (GGUF of the current policy, fast on CPU), vllm (CUDA only).")
    num_workers: int = Field(2, ge=1, description="RolloutWorker actors.")
    num_cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves for each rollout actor.")
    num_gpus_per_worker: float = Field(0.0, ge=0, description="GPUs Ray reserves for each rollout actor.")
    threads_per_worker: int = Field(1, ge=1, description="Compute threads each actor's engine uses.")
    max_new_tokens: int = Field(48, ge=1, description="Completion length cap.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature for rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling for rollouts.")
    gguf_quant: Literal["f32", "f16", "q8_0"] = Field("q8_0", description="GGUF type the llamacpp engine runs the policy in.")
    flash_attn: bool = Field(False, description="llamacpp: llama.cpp's flash attention. Off: on CPU builds it makes a batched decode step slower (`python -m sparring.bench.rollout` measures both); a CUDA build of llama.cpp may want it on.")
    batch_rows: int = Field(16, ge=1, le=32, description="llamacpp: sequences an actor decodes as one batch — the groups of several prompts together (a system prompt they share decoded once); raised to num_generations when smaller. At most 32: llama.cpp's CPU kernels change at 64 tokens per batch (measured), and a completion must not depend on what else is in its batch.")
    max_restarts: int = Field(3, ge=0, description="Times Ray restarts a crashed rollout actor before the run fails.")
    max_task_retries: int = Field(1, ge=0, description="Times Ray retries a rollout call on a restarted actor (the pool re-dispatches beyond that).")


class RLConfig(Section):
    algo: Literal["grpo", "dpo"] = Field("grpo", description="RL algorithm: grpo (TRL GRPOTrainer with actor rollouts) or dpo (iterative DPO rounds).")
    init: str | None = Field(None, description="SFT run directory or adapter directory to start from (None: the SFT output of the same run, if any).")
    allow_base_init: bool = Field(False, description="Allow RL straight from the base model with a fresh LoRA when there is no SFT adapter (smoke runs); otherwise RL without an SFT init is refused.")
    steps: int = Field(50, ge=1, description="GRPO optimizer steps.")
    batch_size: int = Field(8, ge=2, description="Completions per optimizer step; must be a multiple of num_generations (prompts per step = batch_size / num_generations).")
    num_generations: int = Field(4, ge=2, description="Completions per prompt (the GRPO group size).")
    learning_rate: float = Field(5e-5, gt=0, description="Learner learning rate.")
    beta: float = Field(0.0, ge=0, description="KL coefficient against the reference policy (0 disables the reference model).")
    epsilon: float = Field(0.2, gt=0, description="PPO-style clipping range of the importance ratio.")
    importance_sampling: bool = Field(True, description="Correct for rollout-engine vs learner numerics (truncated importance weights).")
    max_staleness: int = Field(0, ge=0, description="Policy versions a worker may lag behind the learner (0: sync after every step).")
    overlap_generation: bool = Field(False, description="GRPO: generate the next step's completions on the rollout actors while the learner trains on this step's (one policy version behind, importance-weighted; never across a checkpoint). Pair with rl.rollout.threads_per_worker so actors and learner share the cores.")
    probe_tolerance: float = Field(0.05, gt=0, description="Max mean |logprob| gap between a worker and the learner on the probe tokens before the run stops.")
    checkpoint_every: int = Field(10, ge=1, description="Write a full, resumable checkpoint every N steps.")
    keep_checkpoints: int = Field(3, ge=1, description="Newest full RL checkpoints kept on disk (older ones are deleted).")
    reward: str = Field("total", description="What the learner optimizes: 'total' (the referee's reward) or the name of one of its components (e.g. 'format' for a format-only warm-up); every component is logged either way.")
    is_cap: float = Field(2.0, gt=0, description="Truncation cap of the per-token importance weight min(pi_learner / pi_rollout, is_cap) (with importance_sampling).")
    share_prompt_prefix: bool = Field(True, description="Learner: run each group's prompt once and its completions on the shared KV cache (same log-probabilities as a per-row forward, much less compute on long prompts; rotary-position models only, others fall back).")
    disable_dropout: bool = Field(True, description="Learner: dropout off (LoRA dropout included), so the policy log-probabilities in the clipped ratio and the importance weights are deterministic and match the rollout engine's, as OpenRLHF and verl do; also skips the dropout masks' cost.")
    learner_bf16: bool | None = Field(False, description="Learner: hold the frozen base weights in bfloat16 (the LoRA adapter, its gradients and the optimizer state stay float32; the merged output is rebuilt on the model.dtype base). About 1.5x faster forward/backward on CPUs with AVX-512 BF16 or AMX and on GPUs; slow on CPUs without them. None: on where the hardware has it.")
    dpo_epochs: float = Field(1.0, gt=0, description="DPO: passes over each round's preference pairs.")
    dpo_prompts: int = Field(16, ge=1, description="DPO: prompts sampled per round (each gets num_generations completions).")
    chess_selfplay: bool = Field(True, description="Chess + GRPO: build each step's groups from the positions the policy faced in actor self-play games (False: from the env's position set).")
    selfplay_opponents: list[str] = Field(default_factory=lambda: ["self", "stockfish:skill=0", "checkpoint"], description="Chess self-play opponents, one per step in rotation: self, random, stockfish:skill=N, stockfish:elo=N, or checkpoint (an earlier policy from the opponent pool; self until the pool has one).")
    opponent_pool_every: int = Field(10, ge=0, description="Chess self-play: add the current policy to the opponent pool every N steps (0: never).")
    opponent_pool_size: int = Field(4, ge=1, description="Chess self-play: earlier policies kept in the opponent pool (oldest dropped first).")
    rounds: int = Field(3, ge=1, description="DPO: rounds of sample -> score -> pair -> train.")
    dpo_margin: float = Field(0.1, ge=0, description="DPO: minimal reward gap between chosen and rejected.")
    dpo_beta: float = Field(0.1, gt=0, description="DPO: beta of the DPO loss.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA settings when no --init adapter is given.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Rollout actors and sampling.")

    @model_validator(mode="after")
    def _group_divides_batch(self) -> "RLConfig":
        if self.batch_size % self.num_generations:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of num_generations {self.num_generations}; "
                f"use e.g. batch_size={self.num_generations * max(1, self.batch_size // self.num_generations)}"
            )
        return self

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size // self.num_generations


class EvalConfig(Section):
    samples: int = Field(200, ge=1, description="Prompts evaluated per model.")
    max_new_tokens: int = Field(48, ge=1, description="Completion length cap at evaluation.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature (0 = greedy).")
    engine: Literal["hf", "llamacpp"] = Field("hf", description="Generation engine for evaluation: hf (transformers on the HF weights) or llamacpp (llama.cpp on a GGUF of each model, eval.gguf_quant: several times faster on CPU, and it measures what the GGUF export ships).")
    gguf_quant: str = Field("q8_0", description="llamacpp engine: the GGUF type the base and trained models are converted to for evaluation (f32, f16, q8_0, ...).")
    batch_size: int = Field(16, ge=1, description="Prompts generated together (hf engine).")
    compare_base: bool = Field(True, description="Also evaluate the base model on the same prompts (the 'before' column).")
    games: int = Field(0, ge=0, description="Chess: games against each opponent (0: none).")
    opponents: list[str] = Field(default_factory=lambda: ["random", "stockfish:skill=0"], description="Chess match opponents: random, stockfish:skill=N, stockfish:elo=N.")
    puzzles: int = Field(0, ge=0, description="Chess: Lichess puzzles to solve (0: none).")


class ExportConfig(Section):
    formats: list[Literal["hf", "gguf", "mlc", "ollama"]] = Field(default_factory=lambda: ["hf", "gguf", "mlc", "ollama"], description="Formats to export.")
    gguf_quants: list[str] = Field(default_factory=lambda: ["q8_0"], description="GGUF types: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k_m, q5_k_m, q6_k.")
    mlc_quants: list[str] = Field(default_factory=lambda: ["q0f16"], description="MLC quantizations: q0f16, q0f32, q4f16_1, q4f32_1.")
    every_steps: int = Field(0, ge=0, description="During RL, export every N steps in a background Ray task (0: only at the end).")
    model_card: bool = Field(True, description="Write a README.md model card beside the HF export.")


class WandbConfig(Section):
    enabled: bool = Field(False, description="Log to Weights & Biases (offline automatically when no API key is set).")
    project: str = Field("sparring", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    mode: Literal["auto", "online", "offline"] = Field("auto", description="auto: online with WANDB_API_KEY, offline without.")


class TrackingConfig(Section):
    wandb: WandbConfig = Field(default_factory=WandbConfig, description="Weights & Biases settings; metrics.jsonl is always written.")
    log_every: int = Field(1, ge=1, description="Log metrics every N steps.")
    sample_table_rows: int = Field(8, ge=0, description="Samples logged per step as a table.")


class RayConfig(Section):
    address: str | None = Field(None, description="Ray cluster to join ('auto' or host:port); None starts a local one.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local cluster (None: all).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs of the local cluster (None: detected).")
    dashboard: bool = Field(True, description="Start the Ray dashboard on 127.0.0.1.")
    connect_timeout_s: float = Field(20.0, gt=0, description="Seconds to wait for a cluster at `address` before giving up.")


class RunConfig(Section):
    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$", description="Run name; the run directory is <output_dir>/<name>-<UTC timestamp>.")
    seed: int = Field(42, description="One seed for python, numpy, torch, data splits, sampling and Stockfish openings.")
    output_dir: str = Field("runs", description="Parent folder of run directories.")
    stages: list[Literal["data", "sft", "rl", "eval", "export", "report"]] = Field(default_factory=lambda: list(STAGES), description="Stages `sparring run` executes, in order.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(default_factory=DataConfig, description="Training data for SFT.")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="LoRA supervised fine-tuning.")
    env: EnvConfig = Field(default_factory=EnvConfig, description="The task: prompts and referee.")
    rl: RLConfig = Field(default_factory=RLConfig, description="Reinforcement learning (GRPO / DPO).")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation before/after.")
    export: ExportConfig = Field(default_factory=ExportConfig, description="Exports and their verification.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Metrics logging.")
    ray: RayConfig = Field(default_factory=RayConfig, description="Ray cluster.")
