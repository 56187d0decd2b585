import sys; print(open(sys.argv[1]+"/rate.csv").read())
