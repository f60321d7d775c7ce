"""Email content: sandboxed rendering, personalization, HTML to text."""
