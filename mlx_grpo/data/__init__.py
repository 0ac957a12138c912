"""Where prompts come from: sources (files, hub), built-in tasks, templates, the prompt stream."""
