from layerscope.cli import main
import sys
sys.exit(main())
