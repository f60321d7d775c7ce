"""Events in one vocabulary, and what is rolled up from them."""
