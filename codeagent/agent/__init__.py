"""The model loop: prompt, Anthropic client (streaming), steps, usage."""
