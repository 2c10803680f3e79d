"""LLaMA-Factory: ActivityNet-QA conversion and dataset_info.json registration."""
