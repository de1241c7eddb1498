"""The FastAPI scoring service (issue [3 of 6]): not built yet."""
