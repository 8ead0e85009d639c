from emnet.cli import main

raise SystemExit(main())
