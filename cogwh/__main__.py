from cogwh.cli import main

raise SystemExit(main())
