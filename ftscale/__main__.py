from ftscale.cli import main

raise SystemExit(main())
