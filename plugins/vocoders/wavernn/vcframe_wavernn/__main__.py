from vcframe_wavernn.train import main

main()
