"""The CDK app of the FinAI platform: typed configuration, compliance gates and the entry point."""
