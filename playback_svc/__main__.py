from playback_svc.server import main

main()
