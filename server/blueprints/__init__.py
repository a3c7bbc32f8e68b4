"""Small blueprints that belong to no resource package (health)."""
