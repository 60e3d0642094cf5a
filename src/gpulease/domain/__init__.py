"""Pure rental core: inventory, pricing, leases, placement, queue. No I/O, no frameworks."""
