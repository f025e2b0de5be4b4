"""How each model family takes video (the policy-family seam, issue 24)."""
