import os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
import numpy as np, sys, os
W=os.environ.get("ORIENT_WORK", "/tmp/orient-fv")
from ev2 import *
def fitr(Z,idx,C):
    A=np.concatenate([Z[idx,0]-Z[idx,k] for k in (1,2,3)])
    Xd=np.concatenate([A,-A]); y=np.r_[np.ones(len(A)),-np.ones(len(A))]
    return LinearSVC(C=C,fit_intercept=False,max_iter=5000).fit(Xd,y).coef_.ravel()
def run(Z,name,Cs=(0.01,0.03,0.1)):
    for C in Cs:
        S=oof(lambda idx: fitr(Z,idx,C), lambda w,idx: Z[idx]@w)
        Sa=np.zeros((n,4))
        for i,v in S.items(): Sa[i]=v
        P=rank_post(Sa,0.25)
        report(f'{name} C={C}',{i:P[i] for i in S})
if __name__=='__main__':
    FV=np.load(sys.argv[1])
    run(FV,'FV')
    if len(sys.argv)>2:
        run(np.concatenate([FV,col*float(sys.argv[2]),asp*0.5],2),'FV+col')
