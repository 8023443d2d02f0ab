"""Lost and stolen laptops on the server: cases and their timeline (`cases`), users' reports and the
laptops' evidence (`reports`, `evidence`), the district's own networks (`networks`, pure), what a
notification says about a case (`summary`) and the `homeroom-server` commands (`commands`)."""
