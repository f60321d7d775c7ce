"""The console's pages, one module each (registered by web.console.PAGES)."""
