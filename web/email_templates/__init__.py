"""Templates API: reusable subjects and bodies, and previews of them for a subscriber."""
