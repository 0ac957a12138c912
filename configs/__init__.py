"""The run configs that ship with mlx-grpo: installed as the package `mlx_grpo.configs`, so
the demo and these configs work from a wheel install as from a checkout."""
