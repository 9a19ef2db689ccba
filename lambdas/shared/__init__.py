"""Code shared by the platform's Lambda functions (packaged with every zip function)."""
