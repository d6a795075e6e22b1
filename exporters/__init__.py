"""Exporters: merged HF model, GGUF (llama.cpp/Ollama), MLC (WebLLM); every artifact verified in its runtime."""
