"""Generation engines for rollout actors: hf (transformers), llamacpp (GGUF), vllm (CUDA only)."""
