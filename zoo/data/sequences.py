"""sequences datasets (registered with zoo.data.base.register_dataset)."""
