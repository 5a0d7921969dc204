from saleor_flows.testing import flows  # noqa: F401  (the FlowTester fixture)
