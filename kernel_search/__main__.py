from kernel_search.cli import main

raise SystemExit(main())
