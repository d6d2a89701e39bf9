"""The job tests/test_jobs.py submits: says hello and where the recursa it imports comes from."""

import recursa

print(f"hello from recursa job; recursa imported from {recursa.__file__}")
