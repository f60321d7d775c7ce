"""HTTP email provider adapters behind the SMTP transport's interface."""
