"""The cartable core: domain model, normalised message shapes, workflow and database session."""
