from credits_core.cli import main

raise SystemExit(main())
