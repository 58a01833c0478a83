// Integration tests drive real services (workflows, large files, child processes): allow them time.
jest.setTimeout(120_000);
